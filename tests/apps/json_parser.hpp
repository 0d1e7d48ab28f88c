#pragma once

// A whole JSON document, parsed strictly enough that malformed output fails the test (the
// bench's --json and the load's --json). A copy of the parser in bench_test.cpp, shared here so
// that new tests need not grow that file.

#include <cctype>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace aioloop::testing {

struct json;
using json_object = std::map<std::string, json>;
using json_array = std::vector<json>;
struct json {
    std::variant<std::nullptr_t, bool, double, std::string, json_array, json_object> v;
    const json& operator[](const std::string& key) const {
        return std::get<json_object>(v).at(key);
    }
    bool has(const std::string& key) const {
        return std::holds_alternative<json_object>(v) && std::get<json_object>(v).contains(key);
    }
    double num() const { return std::get<double>(v); }
    const json_array& arr() const { return std::get<json_array>(v); }
    const std::string& str() const { return std::get<std::string>(v); }
};

class json_parser {
public:
    explicit json_parser(std::string text)
        : s_(std::move(text)) {}
    std::optional<json> parse() {
        auto v = value();
        skip();
        if (!v || at_ != s_.size()) {
            return std::nullopt;
        }
        return v;
    }

private:
    void skip() {
        while (at_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[at_]))) {
            ++at_;
        }
    }
    bool eat(char c) {
        skip();
        if (at_ < s_.size() && s_[at_] == c) {
            ++at_;
            return true;
        }
        return false;
    }
    std::optional<std::string> string() {
        if (!eat('"')) {
            return std::nullopt;
        }
        std::string out;
        while (at_ < s_.size() && s_[at_] != '"') {
            if (s_[at_] == '\\') {
                ++at_;
                if (at_ < s_.size() && s_[at_] == 'u') {
                    at_ += 4;
                    out += '?';
                } else if (at_ < s_.size()) {
                    out += s_[at_];
                }
                ++at_;
                continue;
            }
            out += s_[at_++];
        }
        if (at_ >= s_.size()) {
            return std::nullopt;
        }
        ++at_;
        return out;
    }
    std::optional<json> value() {
        skip();
        if (at_ >= s_.size()) {
            return std::nullopt;
        }
        char c = s_[at_];
        if (c == '{') {
            ++at_;
            json_object o;
            if (eat('}')) {
                return json{o};
            }
            do {
                auto k = string();
                if (!k || !eat(':')) {
                    return std::nullopt;
                }
                auto v = value();
                if (!v) {
                    return std::nullopt;
                }
                o.emplace(*k, std::move(*v));
            } while (eat(','));
            return eat('}') ? std::optional<json>(json{o}) : std::nullopt;
        }
        if (c == '[') {
            ++at_;
            json_array a;
            if (eat(']')) {
                return json{a};
            }
            do {
                auto v = value();
                if (!v) {
                    return std::nullopt;
                }
                a.push_back(std::move(*v));
            } while (eat(','));
            return eat(']') ? std::optional<json>(json{a}) : std::nullopt;
        }
        if (c == '"') {
            auto str = string();
            return str ? std::optional<json>(json{*str}) : std::nullopt;
        }
        for (auto [word, val] : {std::pair{"true", json{true}},
                                 std::pair{"false", json{false}},
                                 std::pair{"null", json{nullptr}}}) {
            if (s_.compare(at_, std::strlen(word), word) == 0) {
                at_ += std::strlen(word);
                return val;
            }
        }
        std::size_t used = 0;
        try {
            double d = std::stod(s_.substr(at_, 40), &used);
            at_ += used;
            return json{d};
        } catch (...) {
            return std::nullopt;
        }
    }
    std::string s_;
    std::size_t at_ = 0;
};

} // namespace aioloop::testing
