-- SPEC 4, pin: placeholders and empty strings to null, follower_count to an
-- integer (k = x1,000, M = x1,000,000, decimal mantissa honoured),
-- save_location without its "Local save in " prefix, index renamed to ind,
-- downloaded dropped, exact duplicates dropped.
WITH nulled AS (
  SELECT
    {{ q }}index{{ q }} AS ind,
    NULLIF(unique_id, '') AS unique_id,
    CASE WHEN title IN ('', 'No Title Data Available') THEN NULL ELSE title END AS title,
    CASE WHEN description IN ('', 'No description available Story format', 'No description available', 'Untitled')
         THEN NULL ELSE description END AS description,
    CASE WHEN follower_count IN ('', 'User Info Error') THEN NULL ELSE follower_count END AS follower_count,
    CASE WHEN poster_name IN ('', 'User Info Error') THEN NULL ELSE poster_name END AS poster_name,
    CASE WHEN tag_list IN ('', 'N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e') THEN NULL ELSE tag_list END AS tag_list,
    NULLIF(is_image_or_video, '') AS is_image_or_video,
    CASE WHEN image_src IN ('', 'Image src error.') THEN NULL ELSE image_src END AS image_src,
    NULLIF(save_location, '') AS save_location,
    NULLIF(category, '') AS category
  FROM pin_raw
)
SELECT DISTINCT
  ind,
  unique_id,
  title,
  description,
  CASE
    WHEN follower_count LIKE '%k'
      THEN TRY_CAST(ROUND(TRY_CAST(substr(follower_count, 1, length(follower_count) - 1) AS DOUBLE) * 1000) AS BIGINT)
    WHEN follower_count LIKE '%M'
      THEN TRY_CAST(ROUND(TRY_CAST(substr(follower_count, 1, length(follower_count) - 1) AS DOUBLE) * 1000000) AS BIGINT)
    ELSE TRY_CAST(follower_count AS BIGINT)
  END AS follower_count,
  poster_name,
  tag_list,
  is_image_or_video,
  image_src,
  regexp_replace(save_location, '^Local save in ', '') AS save_location,
  category
FROM nulled
