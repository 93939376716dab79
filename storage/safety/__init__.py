"""Safety tables and the SQL safety and update repositories."""
