#!/usr/bin/env bash
# lua5.4: the interpreter allocates only through realloc (and free): every table that grows, every
# string buffer and every stack resize is a realloc of a live block, so realloc's growing in place,
# moving and shrinking are what this exercises. Tables grown and emptied, string building,
# gsub/format, closures, coroutines, and full, incremental and generational collections.
# Output and exit status compared with a run without the preload.
source "$(dirname "$0")/preload_common.sh"
LUA=$(command -v lua5.4 || command -v lua || true)
[ -n "$LUA" ] || skip "lua5.4 is not installed"
N=${HK_LUA_N:-300000}
cat > "$TMP/work.lua" <<'EOS'
local n = tonumber(arg[1])
local function h(acc, s) for i = 1, #s, 7 do acc = (acc * 31 + s:byte(i)) % 2147483647 end return acc end
-- arrays and hashes that grow (realloc doubling) and are cleared (shrink at the next collection)
local t, m, acc = {}, {}, 7
for i = 1, n do
  t[#t + 1] = i * 3
  m["k" .. (i * 7919 % (n // 3))] = string.rep("x", i % 64)
  if i % 70001 == 0 then t = {}; collectgarbage() end
end
local cnt = 0
for k, v in pairs(m) do cnt = cnt + 1; acc = (acc + #k * 3 + #v) % 2147483647 end
print("tables", #t, cnt, acc)
-- strings: concatenation in a buffer, table.concat, gsub, format
local parts = {}
for i = 1, n // 4 do parts[#parts + 1] = string.format("%d:%s;", i, ("abc"):rep(i % 9)) end
local s = table.concat(parts)
local r, k = s:gsub("(%d+):(a)", "%2=%1")
local up = s:sub(1, 200000):upper():reverse()
print("strings", #s, k, h(0, r), h(0, up))
-- closures and coroutines, each with its own stack that grows with the recursion depth
local function gen(depth)
  return coroutine.wrap(function()
    local function rec(d) if d == 0 then coroutine.yield(depth) else local x = {d} rec(d - 1) x[2] = d end end
    for i = 1, 20 do rec(depth + i) end
  end)
end
local total = 0
for i = 1, n // 1000 do local g = gen(i % 150) for _ = 1, 20 do total = total + g() end end
local fs = {}
for i = 1, n // 10 do local c = i fs[i % 1000 + 1] = function(x) return x + c end end
for i = 1, 1000 do total = total + fs[i](i) end
print("coroutines", total)
-- the three collector modes over the same churn
for _, mode in ipairs({"incremental", "generational", "incremental"}) do
  collectgarbage(mode)
  local keep = {}
  for i = 1, n // 3 do
    local o = {i, tostring(i), {i}}
    if i % 10 == 0 then keep[#keep + 1] = o end
    if #keep > 5000 then keep = {} end
  end
  collectgarbage("collect")
  print(mode, #keep)
end
print("memory below 64 MiB", collectgarbage("count") < 65536)
EOS
run_compare lua l "$LUA" "$TMP/work.lua" "$N"
echo "$name: ok"
