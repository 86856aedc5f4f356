{% import "sql/macros.sql" as m -%}
-- What cleaning user_raw cannot parse (the cleaning summary).
SELECT
  {{ m::unparsed(q=q, occurrences=occurrences, name="date_joined", column="date_joined", present="NULLIF(date_joined, '')", parsed=m::parse_timestamp(ts="date_joined")) }}
FROM user_raw
