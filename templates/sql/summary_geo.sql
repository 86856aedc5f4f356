{% import "sql/macros.sql" as m -%}
-- What cleaning geo_raw cannot parse (the cleaning summary).
{%- set ts = q ~ "timestamp" ~ q %}
SELECT
  {{ m::unparsed(q=q, occurrences=occurrences, name="timestamp", column=ts, present="NULLIF(" ~ ts ~ ", '')", parsed=m::parse_timestamp(ts=ts)) }}
FROM geo_raw
