-- Reads the result of q3a. Exactly one row: ties go to the first country.
SELECT country, follower_count
FROM q3a
ORDER BY follower_count DESC, country ASC NULLS LAST
LIMIT 1
