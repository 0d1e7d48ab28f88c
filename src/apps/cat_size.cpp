// Option parsing and checks for `aioloop cat` that the library, not only the CLI, must enforce.

#include <charconv>
#include <limits>

#include <fmt/format.h>

#include <aioloop/apps/cat.hpp>

namespace aioloop::apps {

result<std::size_t> parse_size(std::string_view text) noexcept {
    std::size_t value = 0;
    const char* first = text.data();
    const char* last = text.data() + text.size();
    auto [end, ec] = std::from_chars(first, last, value);
    if (ec == std::errc::result_out_of_range) {
        return fail(ERANGE);
    }
    if (ec != std::errc{} || value == 0) {
        return fail(EINVAL);
    }
    std::string_view suffix(end, static_cast<std::size_t>(last - end));
    unsigned shift = 0;
    if (suffix.empty() || suffix == "B") {
        shift = 0;
    } else if (suffix == "K" || suffix == "k" || suffix == "KiB") {
        shift = 10;
    } else if (suffix == "M" || suffix == "MiB") {
        shift = 20;
    } else if (suffix == "G" || suffix == "GiB") {
        shift = 30;
    } else {
        // Decimal units (KB = 1000) would be a surprise for a block size: refuse them.
        return fail(EINVAL);
    }
    if (value > (std::numeric_limits<std::size_t>::max() >> shift)) {
        return fail(ERANGE);
    }
    return value << shift;
}

result<void> validate(const cat_options& options, std::string& why) {
    if (options.queue_depth == 0 || options.queue_depth > max_cat_queue_depth) {
        why = fmt::format(
            "--queue-depth {}: must be 1..{}", options.queue_depth, max_cat_queue_depth);
        return fail(EINVAL);
    }
    if (options.block_size == 0 || options.block_size > max_cat_buffer_bytes ||
        options.queue_depth * options.block_size > max_cat_buffer_bytes) {
        why = fmt::format("--queue-depth {} x --block-size {}: must be 1 byte..{} MiB in all",
                          options.queue_depth,
                          options.block_size,
                          max_cat_buffer_bytes >> 20);
        return fail(EINVAL);
    }
    return {};
}

} // namespace aioloop::apps
