-- Argo CD health of an aifactory.eu TrainingJob.
-- Succeeded: Healthy. Failed: Degraded. Suspended: Suspended. Anything else (pending, queued, admitted, running,
-- restarting): Progressing, with the reason and the operator's message, which is Kueue's while the run waits.
local hs = {}
local st = obj.status
if st == nil or st.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to see the run"
  return hs
end
if st.observedGeneration ~= nil and obj.metadata.generation ~= nil and st.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to see the latest spec"
  return hs
end
local text = st.phase
if st.reason ~= nil and st.reason ~= "" then
  text = text .. " (" .. st.reason .. ")"
end
if st.message ~= nil and st.message ~= "" then
  text = text .. ": " .. st.message
end
hs.message = text
if st.phase == "Succeeded" then
  hs.status = "Healthy"
elseif st.phase == "Failed" then
  hs.status = "Degraded"
elseif st.phase == "Suspended" then
  hs.status = "Suspended"
else
  hs.status = "Progressing"
end
return hs
