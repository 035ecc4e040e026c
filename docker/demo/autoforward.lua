-- Auto-forward for the demo PACS: when a study has been stable for StableAge seconds, send its chest radiograph
-- series (CR or DX, body part CHEST, or no body part with a chest-like study description) to the AI node.
-- A forwarded series is marked, so the results the node sends back (SR, SC, PR series) never trigger a second run.

local NODE = "cxr"
local MODALITIES = { CR = true, DX = true }

local function isChest(seriesTags, studyTags)
  local bodyPart = string.upper(seriesTags["BodyPartExamined"] or "")
  if bodyPart ~= "" then
    return bodyPart == "CHEST"
  end
  local description = string.upper(studyTags["StudyDescription"] or "")
  return string.find(description, "CHEST") ~= nil or string.find(description, "THORAX") ~= nil
end

local function alreadyForwarded(seriesId)
  local metadata = ParseJson(RestApiGet("/series/" .. seriesId .. "/metadata"))
  for _, name in ipairs(metadata) do
    if name == "CxrForwarded" then
      return true
    end
  end
  return false
end

function OnStableStudy(studyId, tags, metadata)
  local study = ParseJson(RestApiGet("/studies/" .. studyId))
  local studyTags = study["MainDicomTags"] or {}
  local chosen = {}
  for _, seriesId in ipairs(study["Series"]) do
    local series = ParseJson(RestApiGet("/series/" .. seriesId))
    local seriesTags = series["MainDicomTags"] or {}
    if MODALITIES[seriesTags["Modality"] or ""] and isChest(seriesTags, studyTags)
        and not alreadyForwarded(seriesId) then
      table.insert(chosen, seriesId)
    end
  end
  if #chosen == 0 then
    return
  end
  print("cxr auto-forward: sending " .. #chosen .. " series of study " .. studyId .. " to " .. NODE)
  RestApiPost("/modalities/" .. NODE .. "/store", DumpJson({ Resources = chosen, Synchronous = true }, true))
  for _, seriesId in ipairs(chosen) do
    RestApiPut("/series/" .. seriesId .. "/metadata/CxrForwarded", "yes")
  end
end
