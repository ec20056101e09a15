// What the emulated server does to the names it is given
// (fault knob `filename_mode`, docs/emulator.md). shootbin.md §2: whether
// the server keeps a '/' in the name, normalises Unicode or truncates long
// names is not documented, so the client must match on the name as echoed.
//
// A mode is one step or several joined by '+', applied left to right:
//   exact          the name as given (default)
//   basename       only what follows the last '/'
//   nfc            Unicode NFC (ICU's normaliser; the client uses another
//                  library on purpose, so the two must agree on real data)
//   truncate:N     the first N bytes, never splitting a UTF-8 sequence
//   basename_nfc   = basename+nfc
// e.g. "basename+nfc+truncate:64".
#pragma once

#include <optional>
#include <string>

namespace emu {

// Canonical spelling of `mode`, or nullopt (with `error` set) when it is not
// a valid mode.
std::optional<std::string> ParseFilenameMode(const std::string& mode, std::string* error = nullptr);

// Applies a mode accepted by ParseFilenameMode. A step that would leave an
// empty name (a name ending in '/') keeps the name it was given; a name that
// is not valid UTF-8 is left alone by nfc.
std::string NormaliseFilename(const std::string& name, const std::string& mode);

// NFC of UTF-8 text (ICU); nullopt when `utf8` is not valid UTF-8.
std::optional<std::string> NfcUtf8(const std::string& utf8);

}  // namespace emu
