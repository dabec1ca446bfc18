"""Collection workstations (采集工作站): enrolment with a one-time code, tokens, heartbeats."""
