-- Argo CD health of an aifactory.eu TenantQuota.
-- Ready: Healthy. A spent budget, or a spec the operator cannot carry out (Stalled): Degraded. Otherwise
-- Progressing, with the Ready condition's reason and message.
local hs = {}
local st = obj.status
if st == nil or st.conditions == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to see the tenant"
  return hs
end
if st.observedGeneration ~= nil and obj.metadata.generation ~= nil and st.observedGeneration < obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to see the latest spec"
  return hs
end
local ready, stalled, budget
for _, c in ipairs(st.conditions) do
  if c.type == "Ready" then ready = c end
  if c.type == "Stalled" then stalled = c end
  if c.type == "BudgetExhausted" then budget = c end
end
if budget ~= nil and budget.status == "True" then
  hs.status = "Degraded"
  hs.message = "BudgetExhausted: " .. (budget.message or "")
  return hs
end
if stalled ~= nil and stalled.status == "True" then
  hs.status = "Degraded"
  hs.message = (stalled.reason or "") .. ": " .. (stalled.message or "")
  return hs
end
if ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
  hs.message = ready.message or ""
  return hs
end
hs.status = "Progressing"
if ready ~= nil then
  hs.message = (ready.reason or "") .. ": " .. (ready.message or "")
else
  hs.message = "Waiting for the Ready condition"
end
return hs
