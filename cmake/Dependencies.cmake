# Every dependency comes from a Debian package; a missing one stops the
# configure step with the name of the package to install.
find_package(PkgConfig QUIET)
if(NOT PkgConfig_FOUND)
  message(FATAL_ERROR "pkg-config not found: apt-get install -y pkg-config")
endif()

macro(shotsync_require_pkg target module debpkg)
  pkg_check_modules(${target} IMPORTED_TARGET ${module})
  if(NOT ${target}_FOUND)
    message(FATAL_ERROR "${module} not found: apt-get install -y ${debpkg}")
  endif()
endmacro()

macro(shotsync_require_cmake name debpkg)
  find_package(${name} ${ARGN} QUIET)
  if(NOT ${name}_FOUND)
    message(FATAL_ERROR "${name} not found: apt-get install -y ${debpkg}")
  endif()
endmacro()

set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
shotsync_require_cmake(CURL libcurl4-openssl-dev)
shotsync_require_cmake(TBB libtbb-dev)
shotsync_require_cmake(SQLite3 libsqlite3-dev)
shotsync_require_cmake(nlohmann_json nlohmann-json3-dev)
shotsync_require_cmake(CLI11 libcli11-dev)
shotsync_require_pkg(TOMLPP tomlplusplus libtomlplusplus-dev)
shotsync_require_pkg(XXHASH libxxhash libxxhash-dev)
shotsync_require_pkg(UTF8PROC libutf8proc libutf8proc-dev)
# libpq: studio mode's shared store (PostgreSQL).
shotsync_require_pkg(LIBPQ libpq libpq-dev)
# watch: the webhook's HMAC (OpenSSL's libcrypto). Its listener speaks HTTP
# itself (watch/http_wire.cpp) and systemd's Type=notify is its own datagram
# (watch/notify.cpp): no cpp-httplib, no libsystemd in the product.
shotsync_require_cmake(OpenSSL libssl-dev)
# TurboJPEG: over-size JPEGs re-encoded to fit (local/fit.cpp).
shotsync_require_pkg(TURBOJPEG libturbojpeg libturbojpeg0-dev)

# Linked into the binary where Debian ships the archive: every shared
# library a process maps costs each command its loading and relocation, and
# a `push` hook is one process per photo
# (docs/hooks.md#cost). libcurl, TBB, libpq, OpenSSL and libstdc++ stay
# shared: Debian ships no archive of them, or not of their dependencies;
# libxxhash too: its archive lacks the x86 dispatch (AVX2 when the CPU has
# it); and toml++: compiled from its headers, the fuzzer's UBSan finds its
# parser reaching code marked unreachable (a toml++ 3.3 bug to report).
# shotsync_link_archive(TARGET ARCHIVE [LIBS...]): TARGET links ARCHIVE.
function(shotsync_link_archive target archive)
  find_library(archive_path NAMES ${archive} NO_CACHE)
  if(NOT archive_path)
    message(FATAL_ERROR "${archive} not found (the -dev package of ${target} ships it)")
  endif()
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    set_property(TARGET ${target} PROPERTY INTERFACE_LINK_LIBRARIES ${archive_path} ${ARGN})
  else()
    set_property(TARGET ${target} PROPERTY IMPORTED_LOCATION ${archive_path})
    set_property(TARGET ${target} PROPERTY INTERFACE_LINK_LIBRARIES ${ARGN})
  endif()
endfunction()
shotsync_link_archive(SQLite::SQLite3 libsqlite3.a m z)
shotsync_link_archive(PkgConfig::UTF8PROC libutf8proc.a)
shotsync_link_archive(PkgConfig::TURBOJPEG libturbojpeg.a)

if(SHOTSYNC_TESTS OR SHOTSYNC_BENCH)
  shotsync_require_pkg(LIBJPEG libjpeg libjpeg62-turbo-dev)
  # The emulator's server and the tests' own small servers.
  shotsync_require_pkg(HTTPLIB cpp-httplib libcpp-httplib-dev)
endif()
if(SHOTSYNC_TESTS)
  shotsync_require_cmake(Catch2 catch2)
endif()
