{% import "sql/macros.sql" as m -%}
-- SPEC 4, pin: placeholders and empty strings to null, follower_count to an
-- integer (k = x1,000, M = x1,000,000, decimal mantissa honoured),
-- save_location without its "Local save in " prefix, index renamed to ind,
-- downloaded dropped, exact duplicates dropped.
WITH nulled AS (
  SELECT
    {{ q }}index{{ q }} AS ind,
{%- for c in pin_nulled %}
    {{ m::nulled(column=c.column, values=c.values) }} AS {{ c.column }}{% if not loop.last %},{% endif %}
{%- endfor %}
  FROM pin_raw
)
SELECT DISTINCT
  ind,
  unique_id,
  title,
  description,
  {{ m::follower_count_int(column="follower_count") }} AS follower_count,
  poster_name,
  tag_list,
  is_image_or_video,
  image_src,
  regexp_replace(save_location, '^Local save in ', '') AS save_location,
  category
FROM nulled
