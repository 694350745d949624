"""From played games to SFT data: the outcome filter, TRL records and their validation."""
