# chestlab_add_plugin(<target> SOURCES <files...> [LIBRARIES <libs...>])
#
# Builds one plugin library (a MODULE: loaded with dlopen, never linked against) and puts it
# where the host looks: the build's plugin folder in-tree, or CMAKE_LIBRARY_OUTPUT_DIRECTORY
# out of tree. Works the same in-tree and after find_package(chestlab).
function(chestlab_add_plugin target)
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBRARIES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  if(TARGET chestlab_host)
    target_link_libraries(${target} PRIVATE chestlab_host ${ARG_LIBRARIES})
    # Installed plugins sit in <libdir>/chestlab/plugins, two levels below the host library.
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${CHESTLAB_BUILD_PLUGIN_DIR}"
                          INSTALL_RPATH "$ORIGIN/../..")
    if(COMMAND chestlab_use_pch)
      chestlab_use_pch(${target})
    endif()
    install(TARGETS ${target} LIBRARY DESTINATION "${CHESTLAB_PLUGIN_INSTALL_DIR}")
    set_property(GLOBAL APPEND PROPERTY CHESTLAB_ALL_PLUGINS ${target})
  else()
    target_link_libraries(${target} PRIVATE chestlab::chestlab_host ${ARG_LIBRARIES})
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden)
  target_compile_features(${target} PRIVATE cxx_std_17)
endfunction()
