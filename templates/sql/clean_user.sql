-- SPEC 4, user: user_name = first_name + " " + last_name, date_joined
-- parsed, exact duplicates dropped.
SELECT DISTINCT
  ind,
  first_name || ' ' || last_name AS user_name,
  age,
  TRY_CAST(date_joined AS TIMESTAMP) AS date_joined
FROM user_raw
