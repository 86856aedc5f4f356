WITH base AS (
  SELECT g.country AS country, p.poster_name AS poster_name, p.follower_count AS follower_count
  FROM pin_clean p JOIN geo_clean g ON p.ind = g.ind
  WHERE p.follower_count IS NOT NULL
), ranked AS (
  SELECT country, poster_name, follower_count,
         RANK() OVER (PARTITION BY country ORDER BY follower_count DESC) AS rk
  FROM base
)
SELECT DISTINCT country, poster_name, follower_count
FROM ranked
WHERE rk = 1
ORDER BY country NULLS LAST, poster_name NULLS LAST
