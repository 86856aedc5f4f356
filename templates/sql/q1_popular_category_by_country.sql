{% import "sql/macros.sql" as m -%}
WITH base AS (
  SELECT g.country AS country, p.category AS category
  FROM pin_clean p JOIN geo_clean g ON p.ind = g.ind
)
{{ m::most_popular(group="country", item="category", count="category_count") }}
