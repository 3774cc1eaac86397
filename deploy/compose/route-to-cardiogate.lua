-- Orthanc auto-routing for deploy/docker-compose.yml: every CT and XA series, once stable
-- (no new instance for StableAge seconds), is sent to cardiogate by C-STORE. cardiogate's
-- results come back as SR, SEG and OT (key image) series, which are never forwarded, so
-- nothing loops. A series that changes later (a late instance) is sent again; cardiogate
-- stores the duplicates as no-ops and re-runs the series on the new input.
--
-- TARGETS are the cardiogate replicas in DicomModalities (orthanc.json). All series of a
-- study go to the same replica (picked from the StudyInstanceUID), because each replica keeps
-- its own spool; when that replica does not answer (cardiogate-2 runs only in the "scale"
-- profile), the next one is used.

local FORWARDED_MODALITIES = { CT = true, XA = true }
local TARGETS = { 'cardiogate', 'cardiogate-2' }

local function firstTarget(studyInstanceUid)
   local sum = 0
   for i = 1, #studyInstanceUid do
      sum = sum + string.byte(studyInstanceUid, i)
   end
   return sum % #TARGETS
end

function OnStableSeries(seriesId, tags, metadata)
   if not FORWARDED_MODALITIES[tags['Modality']] then
      return
   end
   local study = ParseJson(RestApiGet('/series/' .. seriesId .. '/study'))
   local first = firstTarget(study['MainDicomTags']['StudyInstanceUID'])
   for k = 0, #TARGETS - 1 do
      local target = TARGETS[(first + k) % #TARGETS + 1]
      -- a synchronous C-STORE through the REST API, so that a failure is seen here
      local request = DumpJson({ Resources = { seriesId }, Synchronous = true })
      local sent, answer = pcall(RestApiPost, '/modalities/' .. target .. '/store', request)
      if sent and answer ~= nil then
         print('cardiogate routing: series ' .. seriesId .. ' sent to ' .. target)
         return
      end
      print('cardiogate routing: ' .. target .. ' did not take series ' .. seriesId .. ': '
            .. tostring(answer))
   end
   error('cardiogate routing: no cardiogate replica took series ' .. seriesId)
end
