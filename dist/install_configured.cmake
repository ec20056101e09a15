# Run by `cmake --install` (dist/CMakeLists.txt): configures the man page and
# the systemd units with this install's prefix and installs them.
# file(INSTALL) honours DESTDIR, as install(FILES) does.
set(CMAKE_INSTALL_FULL_BINDIR "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_BINDIR}")
set(CMAKE_INSTALL_FULL_DOCDIR "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_DOCDIR}")
# systemd looks in <prefix>/lib/systemd for /usr and /usr/local alike.
set(SHOTSYNC_SYSTEMD_USER_DIR "${CMAKE_INSTALL_PREFIX}/lib/systemd/user")
set(SHOTSYNC_SYSTEMD_SYSTEM_DIR "${CMAKE_INSTALL_PREFIX}/lib/systemd/system")

# The man page's copies may break after each "/" (\\: is groff's break point).
foreach(dir DOCDIR:CMAKE_INSTALL_FULL_DOCDIR USER_DIR:SHOTSYNC_SYSTEMD_USER_DIR
            SYSTEM_DIR:SHOTSYNC_SYSTEMD_SYSTEM_DIR)
  string(REPLACE ":" ";" pair "${dir}")
  list(GET pair 0 name)
  list(GET pair 1 var)
  string(REPLACE "/" "/\\:" SHOTSYNC_MAN_${name} "${${var}}")
endforeach()
configure_file("${SHOTSYNC_DIST_SRC}/man/shotsync.1" "${SHOTSYNC_DIST_OUT}/shotsync.1" @ONLY)
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${CMAKE_INSTALL_MANDIR}/man1" TYPE FILE
     FILES "${SHOTSYNC_DIST_OUT}/shotsync.1")

foreach(unit shotsync.service shotsync.timer shotsync@.service shotsync@.timer shotsync-watch@.service)
  configure_file("${SHOTSYNC_DIST_SRC}/systemd/${unit}.in" "${SHOTSYNC_DIST_OUT}/user/${unit}" @ONLY)
  file(INSTALL DESTINATION "${SHOTSYNC_SYSTEMD_USER_DIR}" TYPE FILE FILES "${SHOTSYNC_DIST_OUT}/user/${unit}")
endforeach()
foreach(unit shotsync@.service shotsync@.timer shotsync-watch@.service)
  configure_file("${SHOTSYNC_DIST_SRC}/systemd/system/${unit}.in" "${SHOTSYNC_DIST_OUT}/system/${unit}" @ONLY)
  file(INSTALL DESTINATION "${SHOTSYNC_SYSTEMD_SYSTEM_DIR}" TYPE FILE FILES "${SHOTSYNC_DIST_OUT}/system/${unit}")
endforeach()
