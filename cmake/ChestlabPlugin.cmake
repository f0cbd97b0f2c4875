# chestlab_add_plugin(<target> SOURCES <files...> [PACKAGES <names...>] [LIBRARIES <libs...>])
#
# Builds one plugin library (a MODULE: loaded with dlopen, never linked against) and puts it
# where the host looks: the build's plugin folder in-tree, or CMAKE_LIBRARY_OUTPUT_DIRECTORY
# out of tree. A plugin sees the SDK and the domain packages it names (imaging, detection,
# synth), nothing of the host or the engine. Works the same in-tree and after
# find_package(chestlab).
function(chestlab_add_plugin target)
  cmake_parse_arguments(ARG "" "" "SOURCES;PACKAGES;LIBRARIES" ${ARGN})
  add_library(${target} MODULE ${ARG_SOURCES})
  if(TARGET chestlab_sdk)
    set(prefix "")
  else()
    set(prefix "chestlab::")
  endif()
  set(packages)
  foreach(p ${ARG_PACKAGES})
    list(APPEND packages ${prefix}chestlab_${p})
  endforeach()
  target_link_libraries(${target} PRIVATE ${prefix}chestlab_sdk ${packages} ${ARG_LIBRARIES})
  if(TARGET chestlab_sdk)
    # Installed plugins sit in <libdir>/chestlab/plugins, two levels below the libraries.
    set_target_properties(${target} PROPERTIES LIBRARY_OUTPUT_DIRECTORY "${CHESTLAB_BUILD_PLUGIN_DIR}"
                          INSTALL_RPATH "$ORIGIN/../..")
    if(COMMAND chestlab_use_pch)
      chestlab_use_pch(${target})
    endif()
    install(TARGETS ${target} LIBRARY DESTINATION "${CHESTLAB_PLUGIN_INSTALL_DIR}")
    set_property(GLOBAL APPEND PROPERTY CHESTLAB_ALL_PLUGINS ${target})
  endif()
  set_target_properties(${target} PROPERTIES PREFIX "" CXX_VISIBILITY_PRESET hidden)
  target_compile_features(${target} PRIVATE cxx_std_17)
endfunction()
