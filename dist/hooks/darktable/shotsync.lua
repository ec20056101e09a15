--[==[
  shotsync.lua: a darktable export target "Shootbin (shotsync)".

  Install: copy to ~/.config/darktable/lua/shotsync.lua and add the line
      require "shotsync"
  to ~/.config/darktable/luarc (or enable it in the script manager). Then in
  lighttable's export module pick "Shootbin (shotsync)" as the target storage.

  darktable exports each image to a temporary file and hands it to store();
  this moves it into the export folder (a folder under one of shotsync's
  [[roots]]) under the image's own name, so exporting the same image again
  sends a revision, not a new photo. finalize() then runs shotsync-hook once
  for the whole export job with every path, which sends them in parallel.

  Preferences (settings → lua options):
    "Shootbin: export folder"   default ~/Photos/Exports
    "Shootbin: hook command"    default shotsync-hook (a path if it is not on PATH)
]==]

local dt = require "darktable"

local NS = "shotsync"
local HOME = os.getenv("HOME") or ""

dt.preferences.register(NS, "folder", "string", "Shootbin: export folder",
  "folder under a [[roots]] path of your shotsync config that exports are moved to",
  HOME .. "/Photos/Exports")
dt.preferences.register(NS, "hook", "string", "Shootbin: hook command",
  "the shotsync-hook program", "shotsync-hook")

-- One shell word, whatever the path holds (spaces, quotes, $).
local function quote(s)
  return "'" .. (s:gsub("'", "'\\''")) .. "'"
end

local function basename(path)
  return path:match("([^/]+)$")
end

local function expand(path)
  if path:sub(1, 2) == "~/" then return HOME .. path:sub(2) end
  return path
end

-- Moves src to dst; copies when they are on different file systems.
local function move(src, dst)
  if os.rename(src, dst) then return true end
  local input, err = io.open(src, "rb")
  if not input then return nil, err end
  local output
  output, err = io.open(dst, "wb")
  if not output then input:close() return nil, err end
  while true do
    local block = input:read(1 << 20)
    if not block then break end
    if not output:write(block) then err = "write failed" break end
  end
  input:close()
  local closed = output:close()
  if err or not closed then os.remove(dst) return nil, err or "close failed" end
  os.remove(src)
  return true
end

local function store(storage, image, format, filename, number, total, high_quality, extra)
  local folder = expand(dt.preferences.read(NS, "folder", "string"))
  local final = folder .. "/" .. basename(filename)
  -- Under a *.part name first: shotsync (and a nightly sync) skip those, so
  -- nothing sends a half-written file.
  local part = folder .. "/." .. basename(filename) .. ".part"
  local ok, err = move(filename, part)
  if ok then ok, err = os.rename(part, final) end
  if not ok then
    dt.print("Shootbin: cannot write " .. final .. ": " .. tostring(err))
    return
  end
  extra.files = extra.files or {}
  table.insert(extra.files, final)
end

local function finalize(storage, image_table, extra)
  local files = extra.files or {}
  if #files == 0 then return end
  local words = {}
  for i, f in ipairs(files) do words[i] = quote(f) end
  local hook = dt.preferences.read(NS, "hook", "string")
  -- finalize runs in darktable's export job, not in the GUI thread: waiting is fine.
  local ok, how, code = os.execute(quote(hook) .. " " .. table.concat(words, " ") .. " </dev/null")
  if ok then
    dt.print(string.format("Shootbin: sent %d photo(s)", #files))
  else
    dt.print(string.format("Shootbin: upload failed (%s %s); see the shotsync hook log",
      tostring(how), tostring(code)))
  end
end

dt.register_storage(NS, "Shootbin (shotsync)", store, finalize, nil, nil, nil)
