{% import "sql/macros.sql" as m -%}
WITH base AS (
  SELECT {{ m::age_group(age="u.age") }} AS age_group, p.follower_count AS follower_count
  FROM pin_clean p JOIN user_clean u ON p.ind = u.ind
  WHERE u.age >= 18 AND p.follower_count IS NOT NULL
)
{{ m::lower_median(keys="age_group", value="follower_count", out="median_follower_count") }}
