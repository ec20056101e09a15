-- A stand-in for darktable's Lua API, just what dist/hooks/darktable/shotsync.lua
-- calls, with the signatures of src/lua/luastorage.c and preferences.c: it records
-- the registered storage so that export.lua can drive it as an export job would.
local dt = { storages = {}, printed = {}, prefs = {} }

function dt.register_storage(plugin_name, name, store, finalize, supported, initialize, widget)
  assert(type(plugin_name) == "string" and type(name) == "string", "register_storage: names")
  assert(type(store) == "function", "register_storage: store must be a function")
  assert(finalize == nil or type(finalize) == "function", "register_storage: finalize")
  dt.storages[plugin_name] = { name = name, store = store, finalize = finalize }
end

dt.preferences = {}
function dt.preferences.register(script, name, type_, label, tooltip, default)
  assert(type_ == "string", "the stub knows only string preferences")
  dt.prefs[script .. "/" .. name] = default
end
function dt.preferences.read(script, name, type_)
  local v = dt.prefs[script .. "/" .. name]
  assert(v ~= nil, "preference read before it was registered: " .. name)
  return v
end

function dt.print(message)
  table.insert(dt.printed, message)
  io.stderr:write("dt.print: ", message, "\n")
end

return dt
