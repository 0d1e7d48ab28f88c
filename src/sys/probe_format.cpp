// The probe report as JSON (for scripts and tests) and as a table (for people).

#include <string_view>

#include <fmt/format.h>

#include <aioloop/sys/probe.hpp>

namespace aioloop::sys {

namespace {

// RFC 8259: quote, backslash and control characters must be escaped; the rest, UTF-8 included,
// goes through as it is.
std::string json_string(std::string_view text) {
    std::string out = "\"";
    for (char c : text) {
        switch (c) {
        case '"':
            out += "\\\"";
            break;
        case '\\':
            out += "\\\\";
            break;
        case '\n':
            out += "\\n";
            break;
        case '\r':
            out += "\\r";
            break;
        case '\t':
            out += "\\t";
            break;
        default:
            if (static_cast<unsigned char>(c) < 0x20) {
                out += fmt::format("\\u{:04x}", static_cast<unsigned>(c));
            } else {
                out += c;
            }
        }
    }
    out += '"';
    return out;
}

class json_object {
public:
    void raw(std::string_view key, std::string_view value) {
        out_ += fmt::format("{}\n  {}: {}", out_.empty() ? "{" : ",", json_string(key), value);
    }
    void text(std::string_view key, std::string_view value) { raw(key, json_string(value)); }
    void optional_text(std::string_view key, std::string_view value) {
        raw(key, value.empty() ? "null" : json_string(value));
    }
    void flag(std::string_view key, const probe_flag& flag) {
        raw(key, flag.value ? "true" : "false");
        if (!flag.value) {
            text(fmt::format("{}_reason", key), flag.reason);
        } else if (!flag.reason.empty()) {
            text(fmt::format("{}_note", key), flag.reason);
        }
    }
    void number(std::string_view key, const probe_number& number) {
        raw(key, number.value ? fmt::format("{}", *number.value) : "null");
        if (!number.value) {
            text(fmt::format("{}_reason", key), number.reason);
        }
    }
    std::string done() { return out_ + "\n}\n"; }

private:
    std::string out_;
};

class table {
public:
    void row(std::string_view name, std::string_view value, std::string_view reason) {
        out_ += fmt::format("{:<20} {:<8} {}\n", name, value, reason);
    }
    // `answer`: what the kernel said; a false flag's reason already says it.
    void flag(std::string_view name, const probe_flag& flag, std::string_view answer = {}) {
        std::string why = flag.reason;
        if (flag.value && !answer.empty()) {
            why += fmt::format("{}kernel answered {}", why.empty() ? "" : "; ", answer);
        }
        row(name, flag.value ? "yes" : "no", why);
    }
    void number(std::string_view name, const probe_number& number) {
        row(name, number.value ? fmt::format("{}", *number.value) : "-", number.reason);
    }
    std::string done() { return std::move(out_); }

private:
    std::string out_;
};

} // namespace

std::string format_probe_json(const probe_report& report) {
    json_object json;
    json.text("kernel", report.kernel);
    json.optional_text("kernel_warning", report.kernel_warning);
    json.flag("aio", report.aio);
    json.flag("aio_poll", report.aio_poll);
    json.flag("aio_pgetevents", report.aio_pgetevents);
    json.flag("aio_ring", report.aio_ring);
    json.number("aio_max_nr", report.aio_max_nr);
    json.number("aio_nr", report.aio_nr);
    json.flag("rwf_nowait", report.rwf_nowait);
    json.optional_text("rwf_nowait_answer", report.rwf_nowait_answer);
    json.flag("rwf_nowait_file", report.rwf_nowait_file);
    json.optional_text("rwf_nowait_file_answer", report.rwf_nowait_file_answer);
    json.flag("dio", report.dio);
    json.number("dio_mem_align", report.dio_mem_align);
    json.number("dio_offset_align", report.dio_offset_align);
    json.flag("io_uring", report.io_uring);
    json.flag("uring_defer_taskrun", report.uring_defer_taskrun);
    json.number("io_uring_disabled", report.io_uring_disabled);
    return json.done();
}

std::string format_probe_table(const probe_report& report) {
    table out;
    out.row("kernel", report.kernel, report.kernel_warning);
    out.flag("aio", report.aio);
    out.flag("aio_poll", report.aio_poll);
    out.flag("aio_pgetevents", report.aio_pgetevents);
    out.flag("aio_ring", report.aio_ring);
    out.number("aio_max_nr", report.aio_max_nr);
    out.number("aio_nr", report.aio_nr);
    out.flag("rwf_nowait", report.rwf_nowait, report.rwf_nowait_answer);
    out.flag("rwf_nowait_file", report.rwf_nowait_file, report.rwf_nowait_file_answer);
    out.flag("dio", report.dio);
    out.number("dio_mem_align", report.dio_mem_align);
    out.number("dio_offset_align", report.dio_offset_align);
    out.flag("io_uring", report.io_uring);
    out.flag("uring_defer_taskrun", report.uring_defer_taskrun);
    out.number("io_uring_disabled", report.io_uring_disabled);
    return out.done();
}

} // namespace aioloop::sys
