-- wrk script: POST /predict with a new txn_id on every request (so each one is scored and
-- stored, not answered from the store as a duplicate), over 50,000 Luhn-valid cards, each
-- stamped with a time spread over yesterday: at 10,000 requests/s, 5,000 cards stamped "now"
-- made every card a burst and most answers were flags.
-- Usage: wrk -t2 -c16 -d20s -s benches/http/predict.lua http://127.0.0.1:18080 -- <run-id> [<generated.csv> 2 [fields]]

local threads = {}

function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end

local function luhn_complete(payload)
  local sum, double = 0, true
  for i = #payload, 1, -1 do
    local d = tonumber(payload:sub(i, i))
    if double then
      d = d * 2
      if d > 9 then d = d - 9 end
    end
    sum = sum + d
    double = not double
  end
  return payload .. tostring((10 - sum % 10) % 10)
end

local cards = {}
local countries = { "FR", "DE", "US", "GB", "ES", "IT", "NL", "BR" }
local counter = 0
local run = "run"

-- With a second argument, a CSV written by `aegis generate` (txn_id, timestamp, card_num, amount,
-- country, merchant, merchant_category, …) and a third, wrk's thread count: the file's
-- transactions are sent in order instead, thread t taking rows t, t + threads, … (generated
-- traffic is what the model was trained on; the hand-made requests below are not, and most of
-- them are flagged). Past the end of the file a thread starts again: repeats, answered from the
-- store.
local replay = {}

function init(args)
  run = args[1] or tostring(os.time())
  if args[2] then
    local nthreads = tonumber(args[3]) or 2
    local file = assert(io.open(args[2]))
    file:read("l") -- header
    local n = 0
    for line in file:lines() do
      if n % nthreads == tid then
        local cols = {}
        for c in (line .. ","):gmatch("([^,]*),") do cols[#cols + 1] = c end
        local id, ts, card, amount, country, merchant, category = (table.unpack or unpack)(cols, 1, 7)
        -- With a fourth argument "fields": the generator's declared fields too (examples/schema.toml),
        -- empty ones left out (missing).
        local extra = ""
        if args[4] == "fields" then
          for k, name in ipairs({ "channel", "entry_mode", "device_id", "ip", "email" }) do
            local v = cols[9 + k]
            if v ~= nil and v ~= "" then extra = extra .. string.format(',"%s":"%s"', name, v) end
          end
          if cols[15] ~= nil and cols[15] ~= "" then
            extra = extra .. string.format(',"location":{"lat":%s,"lon":%s}', cols[15], cols[16])
          end
        end
        replay[#replay + 1] = string.format(
          '{"txn_id":"%s-%s","timestamp":"%s","amount":%s,"country":"%s","merchant":"%s","merchant_category":"%s","card_num":"%s"%s}',
          run, id, ts, amount, country, merchant, category, card, extra)
      end
      n = n + 1
    end
    file:close()
    return
  end
  for i = 1, 50000 do
    cards[i] = luhn_complete(string.format("411111%09d", i))
  end
end

function request()
  counter = counter + 1
  if #replay > 0 then
    local body = replay[(counter - 1) % #replay + 1]
    return wrk.format("POST", "/predict", { ["Content-Type"] = "application/json" }, body)
  end
  local body = string.format(
    '{"txn_id":"wrk-%s-%d-%d","timestamp":%d,"amount":%.2f,"country":"%s","merchant":"M%06d","merchant_category":"grocery","card_num":"%s"}',
    run, tid, counter, os.time() - 86400 + (counter * 7919 + tid * 104729) % 86400, 5 + (counter * 7919) % 400, countries[counter % #countries + 1],
    counter % 500, cards[(counter * 31 + tid * 7) % #cards + 1])
  return wrk.format("POST", "/predict", { ["Content-Type"] = "application/json" }, body)
end

function done(summary, latency, requests)
  -- Non-2xx answers would mean the numbers measure errors, not scoring.
  io.write(string.format("non-2xx or socket errors: %d status, %d connect, %d read, %d write, %d timeout\n",
    summary.errors.status, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.timeout))
end
