"""Everything that crosses to the HRIS: syncing people and reviews in, storing review events,
writing results back, resolving people, and erasing a person on request."""
