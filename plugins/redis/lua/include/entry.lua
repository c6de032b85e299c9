-- entry (spliced into fetch.lua and busy-read.lua where they say `--#include entry`): how a
-- broker stream entry is read. Needs `defaultVisibility` (ms) in scope.
local function visibility(fields)
  for i = 1, #fields, 2 do
    if fields[i] == 'v' then return tonumber(fields[i + 1]) or defaultVisibility end
  end
  return defaultVisibility
end

-- The entry's lease length (ms) and what goes back to the client: the usual entry is 'v', lease,
-- 'e', envelope, and its envelope alone is returned; any other shape returns its field list.
local function leaseAndPayload(fields)
  if fields[3] == 'e' and fields[1] == 'v' and fields[5] == nil then
    return tonumber(fields[2]) or defaultVisibility, fields[4]
  end
  return visibility(fields), fields
end
