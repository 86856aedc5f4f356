{% import "sql/macros.sql" as m -%}
-- SPEC 4, user: user_name = first_name + " " + last_name, date_joined
-- parsed, exact duplicates dropped.
SELECT DISTINCT
  ind,
  first_name || ' ' || last_name AS user_name,
  age,
  {{ m::parse_timestamp(ts="date_joined") }} AS date_joined
FROM user_raw
