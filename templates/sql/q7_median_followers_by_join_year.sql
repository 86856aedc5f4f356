{% import "sql/macros.sql" as m -%}
WITH dated AS (
  SELECT {{ m::year_of(ts="u.date_joined") }} AS post_year, p.follower_count AS follower_count
  FROM pin_clean p JOIN user_clean u ON p.ind = u.ind
  WHERE p.follower_count IS NOT NULL
), base AS (
  SELECT post_year, follower_count FROM dated WHERE post_year BETWEEN 2015 AND 2020
)
{{ m::lower_median(keys="post_year", value="follower_count", out="median_follower_count") }}
