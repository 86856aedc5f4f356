-- SPEC 4, geo: coordinates = [latitude, longitude], timestamp parsed,
-- exact duplicates dropped.
SELECT DISTINCT
  ind,
  country,
  {{ array }}(latitude, longitude) AS coordinates,
  TRY_CAST({{ q }}timestamp{{ q }} AS TIMESTAMP) AS {{ q }}timestamp{{ q }}
FROM geo_raw
