# Can a client bootstrapping from 127.0.0.1:19092 reach team-a? Plans and
# applies warn (they do not fail) when it cannot, naming what to change.
data "sluice_diagnosis" "team_a" {
  gateway         = data.sluice_gateway.prod.id
  address         = "127.0.0.1:19092"
  virtual_cluster = "team-a"
}

check "team_a_reachable" {
  assert {
    condition     = data.sluice_diagnosis.team_a.healthy
    error_message = "team-a is unreachable (${data.sluice_diagnosis.team_a.domain}): ${data.sluice_diagnosis.team_a.summary} Fix: ${try(data.sluice_diagnosis.team_a.fix.action, "see checks")}"
  }
}
