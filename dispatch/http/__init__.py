"""The HTTP transport (aiohttp): routes for citizens, staff and operations, request
bodies read bounded and typed, `DispatchError`s translated to JSON in one middleware
(`errors`), the OpenAPI document, and the app keys (`keys`) through which handlers
reach the services built by the composition root.  Handlers call services; they never
touch the store."""
