{% import "sql/macros.sql" as m -%}
-- What cleaning pin_raw cannot parse (the cleaning summary). The nulled
-- placeholders are counted while the rows are read (`pipeline::raw_rows`),
-- from the same list the cleaning SQL is rendered from.
{%- for c in pin_nulled %}{% if c.column == "follower_count" %}{% set_global follower_placeholders = c.values %}{% endif %}{% endfor %}
SELECT
  {{ m::unparsed(q=q, occurrences=occurrences, name="follower_count", column="follower_count",
       present=m::nulled(column="follower_count", values=follower_placeholders),
       parsed=m::follower_count_int(column="follower_count")) }}
FROM pin_raw
