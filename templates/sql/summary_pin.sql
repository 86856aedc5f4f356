{% import "sql/macros.sql" as m -%}
-- What cleaning pin_raw nulls or cannot parse (the cleaning summary).
{%- for c in pin_nulled %}{% if c.column == "follower_count" %}{% set_global follower_placeholders = c.values %}{% endif %}{% endfor %}
{%- for c in pin_nulled %}
SELECT 'nulled' AS check_name, '{{ c.column }}' AS column_name, {{ c.column }} AS value, COUNT(*) AS n
FROM pin_raw
WHERE {{ c.column }} IN (''{% for v in c.values %}, '{{ v }}'{% endfor %})
GROUP BY {{ c.column }}
UNION ALL
{%- endfor %}
SELECT 'unparsed' AS check_name, 'follower_count' AS column_name, MIN(follower_count) AS value, COUNT(*) AS n
FROM pin_raw
WHERE {{ m::nulled(column="follower_count", values=follower_placeholders) }} IS NOT NULL
  AND {{ m::follower_count_int(column="follower_count") }} IS NULL
