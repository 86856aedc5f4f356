{% import "sql/macros.sql" as m -%}
WITH base AS (
  SELECT {{ m::age_group(age="u.age") }} AS age_group, p.category AS category
  FROM pin_clean p JOIN user_clean u ON p.ind = u.ind
  WHERE u.age >= 18
)
{{ m::most_popular(group="age_group", item="category", count="category_count") }}
