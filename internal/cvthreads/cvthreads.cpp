#include <opencv2/core/utility.hpp>
#include "cvthreads.h"

void osp_cv_set_num_threads(int n) { cv::setNumThreads(n); }
int osp_cv_get_num_threads(void) { return cv::getNumThreads(); }
