"""Media facts (ffprobe) and derived media (thumbnails, browser proxies) of recordings."""
