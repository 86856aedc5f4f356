{% import "sql/macros.sql" as m -%}
-- SPEC 4, geo: coordinates = [latitude, longitude], timestamp parsed,
-- exact duplicates dropped.
SELECT DISTINCT
  ind,
  country,
  {{ array }}(latitude, longitude) AS coordinates,
  {{ m::parse_timestamp(ts=q ~ "timestamp" ~ q) }} AS {{ q }}timestamp{{ q }}
FROM geo_raw
