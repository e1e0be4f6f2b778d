#ifndef OSP_CVTHREADS_H
#define OSP_CVTHREADS_H
#ifdef __cplusplus
extern "C" {
#endif
void osp_cv_set_num_threads(int n);
int osp_cv_get_num_threads(void);
#ifdef __cplusplus
}
#endif
#endif
