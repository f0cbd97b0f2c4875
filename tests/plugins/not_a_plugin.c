/* A valid shared library without chestlab's symbols. */
int not_a_chestlab_plugin(void) { return 42; }
