"""What the batch peers share from the contract (docs/SPEC.md): the raw
columns with their types (SPEC 2, `contract::raw_columns`) and the pin
placeholders that cleaning turns into null (SPEC 4). Each peer maps the
types onto its engine's own."""

RAW_COLUMNS = {
    "pin": {
        "index": "int", "unique_id": "text", "title": "text", "description": "text", "poster_name": "text",
        "follower_count": "text", "tag_list": "text", "is_image_or_video": "text", "image_src": "text",
        "downloaded": "int", "save_location": "text", "category": "text",
    },
    "geo": {"ind": "int", "timestamp": "text", "latitude": "float", "longitude": "float", "country": "text"},
    "user": {"ind": "int", "first_name": "text", "last_name": "text", "age": "int", "date_joined": "text"},
}

PLACEHOLDERS = {
    "title": ["No Title Data Available"],
    "description": ["No description available Story format", "No description available", "Untitled"],
    "follower_count": ["User Info Error"],
    "poster_name": ["User Info Error"],
    "tag_list": ["N,o, ,T,a,g,s, ,A,v,a,i,l,a,b,l,e"],
    "image_src": ["Image src error."],
}
