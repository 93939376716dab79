"""Privacy tables and the SQL privacy and retention repositories."""
