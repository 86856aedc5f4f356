{% import "sql/macros.sql" as m -%}
WITH dated AS (
  SELECT {{ m::year_of(ts="g." ~ q ~ "timestamp" ~ q) }} AS post_year, p.category AS category
  FROM pin_clean p JOIN geo_clean g ON p.ind = g.ind
), base AS (
  SELECT post_year, category FROM dated WHERE post_year BETWEEN 2018 AND 2022
)
{{ m::most_popular(group="post_year", item="category", count="category_count") }}
