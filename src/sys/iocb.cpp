#include <cstring>

#include <aioloop/sys/aio.hpp>

namespace aioloop::sys {

namespace {

void prep(iocb& cb,
          std::uint16_t opcode,
          int fd,
          std::uint64_t buf,
          std::uint64_t nbytes,
          std::int64_t offset,
          std::uint64_t data) noexcept {
    std::memset(&cb, 0, sizeof(cb));
    cb.aio_data = data;
    cb.aio_lio_opcode = opcode;
    cb.aio_fildes = static_cast<std::uint32_t>(fd);
    cb.aio_buf = buf;
    cb.aio_nbytes = nbytes;
    cb.aio_offset = offset;
}

std::uint64_t address(const void* p) noexcept {
    return reinterpret_cast<std::uintptr_t>(p);
}

} // namespace

void prep_pread(iocb& cb,
                int fd,
                void* buf,
                std::size_t len,
                std::int64_t offset,
                std::uint64_t data) noexcept {
    prep(cb, IOCB_CMD_PREAD, fd, address(buf), len, offset, data);
}

void prep_pwrite(iocb& cb,
                 int fd,
                 const void* buf,
                 std::size_t len,
                 std::int64_t offset,
                 std::uint64_t data) noexcept {
    prep(cb, IOCB_CMD_PWRITE, fd, address(buf), len, offset, data);
}

// For the vectored commands aio_buf points at the iovec array and aio_nbytes counts its entries.
void prep_preadv(iocb& cb,
                 int fd,
                 std::span<const iovec> iov,
                 std::int64_t offset,
                 std::uint64_t data) noexcept {
    prep(cb, IOCB_CMD_PREADV, fd, address(iov.data()), iov.size(), offset, data);
}

void prep_pwritev(iocb& cb,
                  int fd,
                  std::span<const iovec> iov,
                  std::int64_t offset,
                  std::uint64_t data) noexcept {
    prep(cb, IOCB_CMD_PWRITEV, fd, address(iov.data()), iov.size(), offset, data);
}

void prep_fsync(iocb& cb, int fd, std::uint64_t data) noexcept {
    prep(cb, IOCB_CMD_FSYNC, fd, 0, 0, 0, data);
}

void prep_fdsync(iocb& cb, int fd, std::uint64_t data) noexcept {
    prep(cb, IOCB_CMD_FDSYNC, fd, 0, 0, 0, data);
}

// fs/aio.c reads the poll mask from aio_buf and insists that offset, nbytes and rw_flags are 0.
void prep_poll(iocb& cb, int fd, std::uint16_t events, std::uint64_t data) noexcept {
    prep(cb, IOCB_CMD_POLL, fd, events, 0, 0, data);
}

void set_rw_flags(iocb& cb, int rwf_flags) noexcept {
    cb.aio_rw_flags = rwf_flags;
}

void set_resfd(iocb& cb, int event_fd) noexcept {
    cb.aio_flags |= IOCB_FLAG_RESFD;
    cb.aio_resfd = static_cast<std::uint32_t>(event_fd);
}

} // namespace aioloop::sys
