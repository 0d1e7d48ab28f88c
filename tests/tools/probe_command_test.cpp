// `aioloop probe` as a user runs it: the built binary, its stdout and exit code.

#include <cctype>
#include <cerrno>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <sys/syscall.h>

#include <gtest/gtest.h>

#include "support/seccomp.hpp"

namespace aioloop::tool {
namespace {

using aioloop::testing::child_result;
using aioloop::testing::exec_with_seccomp;

// One JSON value of a flat object: its kind and its text (strings unescaped).
struct json_value {
    enum kind_t { string, number, boolean, null } kind = null;
    std::string text;
};

// A parser for exactly what `probe --json` prints: one object whose values are strings, numbers,
// true, false or null. Anything else — nesting, a trailing comma, a bad escape, text after the
// object — makes it return nullopt, so the test also checks that the output is valid JSON.
class flat_json_parser {
public:
    explicit flat_json_parser(const std::string& text)
        : s_(text) {}

    std::optional<std::map<std::string, json_value>> parse() {
        std::map<std::string, json_value> object;
        if (!eat('{')) {
            return std::nullopt;
        }
        if (eat('}')) {
            return finish(object);
        }
        do {
            auto key = parse_string();
            if (!key || !eat(':')) {
                return std::nullopt;
            }
            auto value = parse_value();
            if (!value || object.count(*key)) {
                return std::nullopt;
            }
            object[*key] = *value;
        } while (eat(','));
        if (!eat('}')) {
            return std::nullopt;
        }
        return finish(object);
    }

private:
    std::optional<std::map<std::string, json_value>>
    finish(std::map<std::string, json_value>& object) {
        skip_space();
        if (i_ != s_.size()) {
            return std::nullopt;
        }
        return object;
    }

    void skip_space() {
        while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) {
            ++i_;
        }
    }

    bool eat(char c) {
        skip_space();
        if (i_ < s_.size() && s_[i_] == c) {
            ++i_;
            return true;
        }
        return false;
    }

    bool eat_word(const std::string& word) {
        if (s_.compare(i_, word.size(), word) == 0) {
            i_ += word.size();
            return true;
        }
        return false;
    }

    std::optional<std::string> parse_string() {
        if (!eat('"')) {
            return std::nullopt;
        }
        std::string out;
        while (i_ < s_.size()) {
            char c = s_[i_++];
            if (c == '"') {
                return out;
            }
            if (static_cast<unsigned char>(c) < 0x20) {
                return std::nullopt; // raw control characters must be escaped
            }
            if (c != '\\') {
                out += c;
                continue;
            }
            if (i_ >= s_.size()) {
                return std::nullopt;
            }
            char e = s_[i_++];
            switch (e) {
            case '"':
            case '\\':
            case '/':
                out += e;
                break;
            case 'n':
                out += '\n';
                break;
            case 't':
                out += '\t';
                break;
            case 'r':
                out += '\r';
                break;
            case 'b':
                out += '\b';
                break;
            case 'f':
                out += '\f';
                break;
            case 'u':
                if (i_ + 4 > s_.size()) {
                    return std::nullopt;
                }
                out += static_cast<char>(std::stoi(s_.substr(i_, 4), nullptr, 16));
                i_ += 4;
                break;
            default:
                return std::nullopt;
            }
        }
        return std::nullopt;
    }

    std::optional<json_value> parse_value() {
        skip_space();
        if (i_ < s_.size() && s_[i_] == '"') {
            auto text = parse_string();
            if (!text) {
                return std::nullopt;
            }
            return json_value{json_value::string, *text};
        }
        for (auto [word, kind] : {std::pair{"true", json_value::boolean},
                                  std::pair{"false", json_value::boolean},
                                  std::pair{"null", json_value::null}}) {
            if (eat_word(word)) {
                return json_value{kind, word};
            }
        }
        std::size_t start = i_;
        while (i_ < s_.size() &&
               (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '-')) {
            ++i_;
        }
        if (i_ == start) {
            return std::nullopt;
        }
        return json_value{json_value::number, s_.substr(start, i_ - start)};
    }

    const std::string& s_;
    std::size_t i_ = 0;
};

const std::vector<std::string> required_keys = {
    "kernel", "aio", "aio_poll", "aio_ring", "aio_max_nr", "aio_nr", "rwf_nowait", "io_uring"};

std::map<std::string, json_value> run_probe_json(const std::vector<int>& refused, int errno_value) {
    child_result child =
        exec_with_seccomp(refused, errno_value, {AIOLOOP_TOOL_PATH, "probe", "--json"});
    EXPECT_TRUE(child.ok()) << child.describe();
    auto object = flat_json_parser(child.out).parse();
    EXPECT_TRUE(object) << "not a flat JSON object:\n" << child.out;
    return object.value_or(std::map<std::string, json_value>{});
}

TEST(ProbeCommand, JsonHasEveryKeyAndAReasonForEachFalse) {
    auto json = run_probe_json({}, 0);
    for (const std::string& key : required_keys) {
        EXPECT_TRUE(json.count(key)) << "missing key " << key;
    }
    EXPECT_EQ(json["kernel"].kind, json_value::string);
    for (const auto& [key, value] : json) {
        if (value.kind == json_value::boolean && value.text == "false") {
            ASSERT_TRUE(json.count(key + "_reason"))
                << key << " is false without " << key << "_reason";
            EXPECT_FALSE(json[key + "_reason"].text.empty());
        }
        if (value.kind == json_value::null && key != "kernel_warning" &&
            key.find("_answer") == std::string::npos) {
            EXPECT_TRUE(json.count(key + "_reason")) << key << " is null without a reason";
        }
    }
    for (const char* key : {"aio", "aio_poll", "aio_ring", "io_uring"}) {
        EXPECT_EQ(json[key].kind, json_value::boolean) << key;
    }
    for (const char* key : {"aio_max_nr", "aio_nr"}) {
        EXPECT_TRUE(json[key].kind == json_value::number || json[key].kind == json_value::null)
            << key;
    }
}

// Docker's default seccomp profile answers io_uring_setup with EPERM.
TEST(ProbeCommand, JsonUnderSeccompRefusingUringSaysWhy) {
    auto json = run_probe_json({SYS_io_uring_setup}, EPERM);
    ASSERT_TRUE(json.count("io_uring"));
    EXPECT_EQ(json["io_uring"].text, "false");
    ASSERT_TRUE(json.count("io_uring_reason"));
    EXPECT_NE(json["io_uring_reason"].text.find("EPERM"), std::string::npos)
        << json["io_uring_reason"].text;
    EXPECT_EQ(json["uring_defer_taskrun"].text, "false");
}

// A missing feature is an answer, not a failure: exit code 0.
TEST(ProbeCommand, ExitsZeroWithoutAio) {
    auto json = run_probe_json({SYS_io_setup}, ENOSYS);
    EXPECT_EQ(json["aio"].text, "false");
    EXPECT_NE(json["aio_reason"].text.find("ENOSYS"), std::string::npos) << json["aio_reason"].text;
    EXPECT_EQ(json["aio_poll"].text, "false");
    EXPECT_TRUE(json.count("aio_poll_reason"));
}

TEST(ProbeCommand, TablePrintsOneLinePerFeature) {
    child_result child = exec_with_seccomp(std::vector<int>{}, 0, {AIOLOOP_TOOL_PATH, "probe"});
    ASSERT_TRUE(child.ok()) << child.describe();
    std::string lines = "\n" + child.out;
    for (const std::string& key : required_keys) {
        EXPECT_NE(lines.find("\n" + key + " "), std::string::npos)
            << "no line for " << key << " in:\n"
            << child.out;
    }
}

} // namespace
} // namespace aioloop::tool
