{% import "sql/macros.sql" as m -%}
-- A user is a distinct (user_name, date_joined): the same person can sit
-- behind several ind values.
WITH joined AS (
  SELECT DISTINCT user_name, date_joined, {{ m::year_of(ts="date_joined") }} AS post_year
  FROM user_clean
)
SELECT post_year, COUNT(*) AS number_users_joined
FROM joined
WHERE post_year BETWEEN 2015 AND 2020
GROUP BY post_year
ORDER BY post_year
