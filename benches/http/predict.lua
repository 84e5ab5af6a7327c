-- wrk script: POST /predict with a new txn_id on every request (so each one is scored and
-- stored, not answered from the store as a duplicate), over 50,000 Luhn-valid cards, each
-- stamped with a time spread over yesterday: at 10,000 requests/s, 5,000 cards stamped "now"
-- made every card a burst and most answers were flags.
-- Usage: wrk -t2 -c16 -d20s -s benches/http/predict.lua http://127.0.0.1:18080 -- <run-id>

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

function init(args)
  run = args[1] or tostring(os.time())
  for i = 1, 50000 do
    cards[i] = luhn_complete(string.format("411111%09d", i))
  end
end

function request()
  counter = counter + 1
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
