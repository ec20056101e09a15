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
# watch: the webhook and metrics listener (cpp-httplib), the webhook's
# HMAC (OpenSSL's libcrypto). systemd's Type=notify is its own datagram
# (watch/notify.cpp): no libsystemd.
shotsync_require_pkg(HTTPLIB cpp-httplib libcpp-httplib-dev)
shotsync_require_cmake(OpenSSL libssl-dev)
if(SHOTSYNC_TESTS OR SHOTSYNC_BENCH)
  shotsync_require_pkg(LIBJPEG libjpeg libjpeg62-turbo-dev)
endif()
if(SHOTSYNC_TESTS)
  shotsync_require_cmake(Catch2 catch2)
endif()
