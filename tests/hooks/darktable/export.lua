-- lua5.4 export.lua SCRIPT FOLDER TMPFILE...: loads SCRIPT under the stub
-- darktable module, sets its export folder, and runs one export job of the
-- TMPFILEs (darktable's temporary exports) through store() and finalize().
local here = arg[0]:match("^(.*)/") or "."
package.path = here .. "/?.lua;" .. package.path
local dt = require "darktable"
dofile(arg[1])

local storage = assert(dt.storages["shotsync"], "shotsync.lua registered no storage")
dt.prefs["shotsync/folder"] = arg[2]
local extra, images = {}, {}
local total = #arg - 2
for i = 3, #arg do
  local image = { id = i }
  images[image] = arg[i]
  storage.store(storage, image, { extension = "jpg" }, arg[i], i - 2, total, false, extra)
end
storage.finalize(storage, images, extra)
for _, m in ipairs(dt.printed) do
  if m:find("failed") or m:find("cannot") then os.exit(1) end
end
