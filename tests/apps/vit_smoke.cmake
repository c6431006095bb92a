# ctest vit_smoke: train_vit for a few steps on synthetic images with rope2d and seqpe, then
# eval_vit at two resolutions; fails on any non-zero exit or a missing output file.
file(REMOVE_RECURSE ${WORK})
foreach(pe rope2d seqpe)
  execute_process(COMMAND ${TRAIN} --config ${CMAKE_CURRENT_LIST_DIR}/vit_smoke.json --pe ${pe} --steps 4
                          --out ${WORK}/${pe} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "train_vit --pe ${pe} failed (${rc})")
  endif()
  execute_process(COMMAND ${EVAL} --run ${WORK}/${pe} --sizes 28,56 --plot ${WORK}/${pe}/eval.svg RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "eval_vit --run ${WORK}/${pe} failed (${rc})")
  endif()
  foreach(f run.json metrics.jsonl best.safetensors checkpoint.safetensors eval.csv eval.svg)
    if(NOT EXISTS ${WORK}/${pe}/${f})
      message(FATAL_ERROR "missing ${WORK}/${pe}/${f}")
    endif()
  endforeach()
endforeach()
