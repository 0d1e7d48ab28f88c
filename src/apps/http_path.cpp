// Request target -> file beneath the root. Decoding refuses what the kernel could misread (NUL,
// encoded slashes), and the kernel's RESOLVE_BENEATH refuses what decoding cannot see (symbolic
// links pointing out of the root).

#include <cerrno>
#include <vector>

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <aioloop/apps/http_path.hpp>

namespace aioloop::apps::http {

namespace {

int hex_value(char c) noexcept {
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

// Percent-decodes one segment; false for a broken escape, NUL or an encoded '/'.
bool decode_segment(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) {
                return false;
            }
            int hi = hex_value(in[i + 1]);
            int lo = hex_value(in[i + 2]);
            if (hi < 0 || lo < 0) {
                return false;
            }
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0' || c == '/') {
            return false;
        }
        out.push_back(c);
    }
    return true;
}

result<int> fail_errno() {
    return tl::unexpected(std::error_code(errno, std::system_category()));
}

// openat2 has no glibc wrapper before 2.36; call it raw.
int openat2_beneath(int dir_fd, const char* path, int flags) {
    struct open_how how {};
    how.flags = static_cast<std::uint64_t>(flags);
    how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return static_cast<int>(::syscall(SYS_openat2, dir_fd, path, &how, sizeof how));
}

// Before 5.6: walk the components ourselves, refusing every symbolic link (O_NOFOLLOW).
int open_nofollow_walk(int root_fd, const std::string& relative, int flags) {
    int dir = ::fcntl(root_fd, F_DUPFD_CLOEXEC, 0);
    std::size_t start = 0;
    while (dir >= 0) {
        std::size_t slash = relative.find('/', start);
        std::string part = relative.substr(start, slash - start);
        bool last = slash == std::string::npos;
        int next =
            ::openat(dir,
                     part.empty() ? "." : part.c_str(),
                     last ? flags | O_NOFOLLOW : O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int saved = errno;
        ::close(dir);
        errno = saved;
        if (last || next < 0) {
            return next;
        }
        dir = next;
        start = slash + 1;
    }
    return -1;
}

result<int> open_one(int dir_fd, const std::string& relative) {
    const int flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
    int fd = openat2_beneath(dir_fd, relative.empty() ? "." : relative.c_str(), flags);
    if (fd < 0 && errno == ENOSYS) {
        fd = open_nofollow_walk(dir_fd, relative, flags);
    }
    if (fd < 0) {
        return fail_errno();
    }
    return fd;
}

} // namespace

decoded_path decode_target_path(std::string_view target) {
    decoded_path out;
    target = target.substr(0, target.find_first_of("?#"));
    if (target.empty() || target.front() != '/') {
        out.status = 400;
        return out;
    }
    out.directory = target.back() == '/';
    std::vector<std::string> segments;
    std::string segment;
    std::size_t start = 1;
    while (start <= target.size()) {
        std::size_t slash = target.find('/', start);
        std::string_view raw = target.substr(start, slash - start);
        start = slash == std::string_view::npos ? target.size() + 1 : slash + 1;
        if (!decode_segment(raw, segment)) {
            out.status = 400;
            return out;
        }
        if (segment.empty() || segment == ".") {
            continue;
        }
        if (segment == "..") {
            if (segments.empty()) {
                out.status = 400;
                return out;
            }
            segments.pop_back();
            continue;
        }
        if (segment.front() == '.') {
            out.status = 404; // hidden files and directories are not served
            return out;
        }
        segments.push_back(segment);
    }
    for (const std::string& s : segments) {
        if (!out.relative.empty()) {
            out.relative.push_back('/');
        }
        out.relative += s;
    }
    return out;
}

result<opened_file> open_beneath(int root_fd, const std::string& relative) {
    opened_file file;
    file.relative = relative;
    auto fd = open_one(root_fd, relative);
    if (!fd) {
        return tl::unexpected(fd.error());
    }
    file.fd = *fd;
    if (::fstat(file.fd, &file.st) != 0) {
        auto err = fail_errno();
        ::close(file.fd);
        return tl::unexpected(err.error());
    }
    if (S_ISDIR(file.st.st_mode)) {
        auto index = open_one(file.fd, "index.html");
        ::close(file.fd);
        if (!index) {
            return tl::unexpected(index.error() == std::errc::no_such_file_or_directory
                                      ? std::make_error_code(std::errc::is_a_directory)
                                      : index.error());
        }
        file.fd = *index;
        file.relative = relative.empty() ? "index.html" : relative + "/index.html";
        if (::fstat(file.fd, &file.st) != 0) {
            auto err = fail_errno();
            ::close(file.fd);
            return tl::unexpected(err.error());
        }
    }
    if (!S_ISREG(file.st.st_mode)) {
        ::close(file.fd);
        return tl::unexpected(std::make_error_code(std::errc::operation_not_permitted));
    }
    return file;
}

int status_for_open_error(std::error_code ec) noexcept {
    if (ec == std::errc::permission_denied || ec == std::errc::operation_not_permitted) {
        return 403;
    }
    if (ec == std::errc::no_such_file_or_directory || ec == std::errc::not_a_directory ||
        ec == std::errc::is_a_directory || ec == std::errc::cross_device_link ||
        ec == std::errc::too_many_symbolic_link_levels || ec == std::errc::filename_too_long) {
        return 404;
    }
    return 500;
}

} // namespace aioloop::apps::http
