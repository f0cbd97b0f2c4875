// Exists so that the precompiled-header target has one translation unit to build.
