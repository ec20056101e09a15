// Small valid images of the formats a proofing server accepts, built byte by
// byte (no codec), for tests that must not depend on the client's own checks.
#pragma once

#include <string>
#include <vector>

namespace shotsync::testing {

// An ISO-BMFF box: 32-bit size, type, payload.
std::string Box(const std::string& type, const std::string& payload);
std::string Png1x1();
std::string Tiff1x1();
std::string Webp1x1();
// An ISO-BMFF (HEIF family) file with `major` brand and `compatible` brands;
// `with_meta` false leaves out the meta box (not an image then).
std::string Bmff(const std::string& major, const std::vector<std::string>& compatible, bool with_meta = true);

}  // namespace shotsync::testing
